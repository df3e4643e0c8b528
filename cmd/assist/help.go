package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpText is what "assist COMMAND --help" shows besides the flags.
type helpText struct {
	synopsis string   // the command line with its arguments
	about    string   // what the command does, in a sentence or two
	examples []string // two or three command lines a newcomer can copy
}

// helps holds every command's help, by name; newFlagSet attaches it, so
// a command cannot be added without one (TestHelpEveryCommand).
var helps = map[string]helpText{
	"app": {
		synopsis: "assist app [--no-browser] [--expires 1h] [--server URL] [flags]",
		about: "Opens the Assist app in your browser (plain \"assist\" does the same): Get help makes an invitation\n" +
			"to read out or send, your contacts are there to ask with one click, and you say yes before anyone\n" +
			"sees your screen.",
		examples: []string{
			"assist app",
			"assist app --no-browser",
			"assist app --expires 30m",
		},
	},
	"audit": {
		synopsis: "assist audit [--json|--csv] [FILE] | assist audit verify [FILE] [--key sha256:HEX] | assist audit prune --keep-days N | assist audit keygen FILE",
		about: "Shows who helped whom on this computer, when, what they were allowed and which files moved, from the\n" +
			"audit log every session writes (signed with this device's key, each entry chained to the one before).\n" +
			"verify checks a log and names the first entry that was edited, deleted or moved (exit code 1).",
		examples: []string{
			"assist audit",
			"assist audit verify",
			"assist audit --csv",
		},
	},
	"recordings": {
		synopsis: "assist recordings --org ORG | assist recordings --org ORG get ID [--out FILE]",
		about: "Lists the session recordings an organisation's machines uploaded to its server (one line each: ID MACHINE USER\n" +
			"START SIZE; USER is the helper who saw the session), or downloads one, for the organisation's admins, with the\n" +
			"account this device logged in to. The file stays encrypted: assist replay FILE --identity KEYFILE plays it.",
		examples: []string{
			"assist recordings --org acme",
			"assist recordings --org acme get 0123456789abcdef0123456789abcdef --out session.rec",
		},
	},
	"replay": {
		synopsis: "assist replay FILE --identity KEYFILE [--listen 127.0.0.1:PORT] [--browser]",
		about: "Plays a session recording (made with assist invite --record-to, or by an agent under its organisation's policy)\n" +
			"to a VNC viewer on this computer, at the recorded pace: type pause, play, skip SECONDS or quit; with --browser\n" +
			"on a page in your browser with Play, Pause and a seek bar. Only the audit key's identity opens it.",
		examples: []string{
			"assist replay assist-20261206-101500-0a1b2c3d.rec --identity ~/audit.key",
			"assist replay session.rec --identity ~/audit.key --listen 127.0.0.1:5905",
			"assist replay session.rec --identity ~/audit.key --browser",
		},
	},
	"install-desktop": {
		synopsis: "assist install-desktop [--uninstall] [--binary PATH]",
		about:    "Adds Assist to your desktop's applications menu and lets it open assist:// links, for you alone (no root needed).",
		examples: []string{
			"assist install-desktop",
			"assist install-desktop --uninstall",
		},
	},
	"invite": {
		synopsis: "assist invite [--server URL] [--file PATH] [--expires 1h] [--name NAME] [--allow ask|view|control] [flags]",
		about: "Lets someone you trust help you: prints a code and a password to read out to them, and opens a page\n" +
			"where you say yes before they see your screen, and yes again before they may use your mouse and keyboard.\n" +
			"Press Esc at any time to take control back; q ends the invitation.",
		examples: []string{
			"assist invite --server https://help.example.org:8443",
			"assist invite --file ~/help.assist --expires 30m",
			"assist invite --name Grandma --allow view",
		},
	},
	"join": {
		synopsis: "assist join FILE|LINK|CODE [--server URL] [--password-file F] [--no-browser] [--request-control] [flags]",
		about: "Helps someone who ran assist invite: give it their code (or the .assist file or assist:// link they sent)\n" +
			"and type the password they read out. Their screen opens in your browser and any VNC viewer on loopback.",
		examples: []string{
			"assist join W848-T91J --server https://help.example.org:8443",
			"assist join ~/Downloads/help.assist",
			"assist join 'assist://invite?d=...' --no-browser --rfb 127.0.0.1:5901",
		},
	},
	"vnc": {
		synopsis: "assist vnc [--display :N] [--listen 127.0.0.1:5900] [--view-only]",
		about: "Serves this desktop to VNC viewers on this computer (or through an SSH tunnel), without a password:\n" +
			"it listens on loopback only. To let someone help you from elsewhere, use assist invite.",
		examples: []string{
			"assist vnc",
			"assist vnc --display :1 --listen 127.0.0.1:5901 --view-only",
		},
	},
	"serve": {
		synopsis: "assist serve [--listen ADDR] [--public-url URL] [--data DIR] [--tls-cert F --tls-key F] [flags]",
		about: "Runs the server that novices and experts meet through: codes, contacts, the relay for networks that\n" +
			"block direct connections, and the expert's web app. It prints its address and certificate fingerprint.",
		examples: []string{
			"assist serve",
			"assist serve --listen :8443 --public-url https://help.example.org:8443 --turn-listen :3478",
			"assist serve --listen :443 --tls-cert fullchain.pem --tls-key privkey.pem --public-url https://help.example.org",
			"assist serve --config /etc/assist/serve.conf --node n1 --drain-grace 5s --drain-timeout 2m",
		},
	},
	"login": {
		synopsis: "assist login https://SERVER[:PORT] [--user NAME] [--display-name \"Full Name\"] [--server-fingerprint sha256:HEX] [--code CODE]",
		about: "Logs this computer in to a server: creates your account the first time, or adds this computer to it\n" +
			"with a code from assist devices add on a computer already logged in.",
		examples: []string{
			"assist login https://help.example.org:8443 --user grandma --display-name \"Grandma\"",
			"assist login https://help.example.org:8443 --user grandma --code 1234-5678",
		},
	},
	"contacts": {
		synopsis: "assist contacts [--watch] | invite | add CODE | remove NAME | block NAME | unblock NAME",
		about: "Lists your contacts and whether they are online; invite prints a code for a new contact, who runs\n" +
			"assist contacts add CODE.",
		examples: []string{
			"assist contacts",
			"assist contacts invite",
			"assist contacts add 1234-5678",
		},
	},
	"devices": {
		synopsis: "assist devices | add | remove ID",
		about:    "Lists the computers logged in to your account, adds one (prints a code for assist login --code) or removes one.",
		examples: []string{
			"assist devices",
			"assist devices add",
			"assist devices remove 3",
		},
	},
	"ask": {
		synopsis: "assist ask NAME [flags]",
		about:    "Asks a contact for help. When they accept, they can see your screen after you say yes, as with assist invite.",
		examples: []string{
			"assist ask bob",
			"assist ask bob --allow view",
		},
	},
	"offer": {
		synopsis: "assist offer NAME | --list [flags]",
		about: "Offers help to a contact, or to a machine of an organisation you help (machines and people share the server's names, so NAME is one or the other). " +
			"When they accept, you join their desktop as with assist join. --list shows the machines you may offer help to.",
		examples: []string{
			"assist offer grandma",
			"assist offer --list",
			"assist offer pc-dana --no-browser",
		},
	},
	"agent": {
		synopsis: "assist agent [enroll https://SERVER TOKEN | install] [flags]",
		about: "On a machine of an organisation: enroll makes it known to the organisation's server with a token from its admin (assist agent enroll --help for its flags: --id, --name, --user); " +
			"then assist agent runs in your desktop session, keeps the machine's presence and asks you about each offer of help " +
			"(a desktop notification where one can be shown, and the terminal). Nobody sees your screen without your yes.",
		examples: []string{
			"assist agent enroll https://help.example.com Xq3...token",
			"assist agent",
			"assist agent install --systemd",
		},
	},
	"org": {
		synopsis: "assist org create ORG | add ORG USER --role ROLE | remove ORG USER | token ORG [--remote] | policy ORG | machines ORG [flags]",
		about: "Administers organisations on the server's own database (run it on the server's host, with assist serve's --data): " +
			"creates one, names its admins, helpers and members, makes enrolment tokens for its machines, and sets its policy " +
			"(the rights helpers may ask for, recording, the time users have to answer).",
		examples: []string{
			"assist org create acme --display-name \"ACME IT\"",
			"assist org add acme dana --role helper",
			"assist org token acme --remote --uses 20",
			"assist org policy acme --rights view,control --record no --timeout 1m",
			"assist org policy acme --record yes --audit-key age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
		},
	},
	"requests": {
		synopsis: "assist requests [flags]",
		about:    "Shows requests for help (or offers of help) from your contacts as they come, and lets you accept or decline each.",
		examples: []string{
			"assist requests",
			"assist requests --allow view",
		},
	},
	"version": {
		synopsis: "assist version",
		about:    "Prints the version of assist and the Go version and platform it was built for.",
		examples: []string{"assist version", "assist --version"},
	},
}

// setHelp makes fs print h, then every flag with its default, then the
// examples, for --help and after a usage error.
func setHelp(fs *flag.FlagSet, h helpText) {
	fs.Usage = func() { writeHelp(fs.Output(), fs, h) }
}

func writeHelp(w io.Writer, fs *flag.FlagSet, h helpText) {
	fmt.Fprintf(w, "usage: %s\n\n", h.synopsis)
	if h.about != "" {
		fmt.Fprintf(w, "%s\n\n", h.about)
	}
	fmt.Fprintln(w, "flags:")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		usage = strings.ReplaceAll(usage, "\n", "\n      ")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "      %s\n", usage)
	})
	fmt.Fprintln(w, "  --verbose\n      write the log to the terminal (stderr) instead of the log file")
	fmt.Fprintln(w, "\nexamples:")
	for _, e := range h.examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}
