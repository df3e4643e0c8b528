package launcher

import (
	"fmt"
	"os"
	"path/filepath"
)

// The agent of an organisation's machine (assist agent) starts with the
// user's graphical session, in one of two ways: an XDG autostart entry,
// which every desktop that follows the Desktop Application Autostart
// Specification runs at login with the session's DISPLAY; or a systemd
// user unit bound to graphical-session.target, for desktops that start
// their session with systemd (GNOME, KDE Plasma) and import DISPLAY into
// the user manager. One of the two, never both: two agents would answer
// the same offers.
const (
	AgentAutostartFile = "assist-agent.desktop"
	AgentUnitFile      = "assist-agent.service"
)

// AgentAutostartEntry is the XDG autostart entry of assist agent.
func AgentAutostartEntry(binary string) string {
	return `[Desktop Entry]
Type=Application
Version=1.4
Name=Assist agent
Comment=Asks you when your organisation's help desk offers to help; nobody sees your screen without your yes
Exec=` + quoteExec(binary) + ` agent
Icon=help-browser
Terminal=false
NoDisplay=true
X-GNOME-Autostart-enabled=true
`
}

// AgentUnit is the systemd user unit of assist agent.
func AgentUnit(binary string) string {
	return `[Unit]
Description=Assist agent: asks you when your organisation's help desk offers to help
Documentation=https://github.com/assist-project/assist
PartOf=graphical-session.target
After=graphical-session.target

[Service]
ExecStart=` + binary + ` agent
Restart=on-failure
RestartSec=10

[Install]
WantedBy=graphical-session.target
`
}

// AgentOptions say where to install the agent's start-up file.
type AgentOptions struct {
	// Binary is the absolute path of the assist binary.
	Binary string
	// ConfigHome is $XDG_CONFIG_HOME; "" means the environment's, else
	// ~/.config.
	ConfigHome string
	// Systemd installs the user unit instead of the autostart entry.
	Systemd bool
}

// InstallAgent writes the agent's autostart entry
// (CONFIG/autostart/assist-agent.desktop) or user unit
// (CONFIG/systemd/user/assist-agent.service) and removes the other, and
// returns the path written. Enabling the unit (systemctl --user enable
// --now assist-agent) is the caller's.
func InstallAgent(o AgentOptions) (string, error) {
	if !filepath.IsAbs(o.Binary) {
		return "", fmt.Errorf("the agent's binary %q is not an absolute path", o.Binary)
	}
	home := o.ConfigHome
	if home == "" {
		home = os.Getenv("XDG_CONFIG_HOME")
	}
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory to install into: %w", err)
		}
		home = filepath.Join(h, ".config")
	}
	auto := filepath.Join(home, "autostart", AgentAutostartFile)
	unit := filepath.Join(home, "systemd", "user", AgentUnitFile)
	path, data, other := auto, AgentAutostartEntry(o.Binary), unit
	if o.Systemd {
		path, data, other = unit, AgentUnit(o.Binary), auto
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("installing the agent: %w", err)
	}
	if err := writeFile(path, data); err != nil {
		return "", err
	}
	if err := os.Remove(other); err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("removing %s: %w", other, err)
	}
	return path, nil
}
