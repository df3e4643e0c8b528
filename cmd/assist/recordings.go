package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/assist-project/assist/messenger"
)

// runRecordings lists an organisation's session recordings on its server,
// or downloads one, for its admins: assist recordings --org ORG [get ID
// [--out FILE]]. The file stays encrypted; assist replay FILE --identity
// KEY plays it.
func runRecordings(ctx context.Context, args []string, stdout io.Writer) error {
	flags := newFlagSet("recordings", os.Stderr)
	org := flags.String("org", "", "the organisation whose recordings its server keeps (you must be its admin)")
	out := flags.String("out", "", "get: the file to write (default ID.rec in this folder)")
	positional, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	get := len(positional) == 2 && positional[0] == "get"
	if *org == "" || !(len(positional) == 0 || get) || *out != "" && !get {
		fmt.Fprintln(os.Stderr, "usage: assist recordings --org ORG | assist recordings --org ORG get ID [--out FILE]")
		return errUsage
	}
	_, c, err := connectAccount(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close()
	if !get {
		list, err := c.Recordings(ctx, *org)
		if err != nil {
			return orgRecordingsError(*org, err)
		}
		for _, r := range list {
			fmt.Fprintf(stdout, "%s %s %s %s %d\n", r.ID, r.Machine, r.User, r.Start.UTC().Format(time.RFC3339), r.Size)
		}
		return nil
	}
	id := positional[1]
	if !messenger.ValidRecordingID(id) {
		return fmt.Errorf("%q is not a recording id: list them with assist recordings --org %s", id, *org)
	}
	path := *out
	if path == "" {
		path = id + ".rec"
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("the recording's file: %w (choose another with --out)", err)
	}
	n, err := c.GetRecording(ctx, *org, id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return orgRecordingsError(*org, err)
	}
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(stdout, "recording: %s (%d bytes); play it with assist replay %s --identity KEY\n", abs, n, path)
	return nil
}

// orgRecordingsError explains the server's refusal.
func orgRecordingsError(org string, err error) error {
	switch {
	case messenger.IsCode(err, messenger.CodeUnauthorized):
		return fmt.Errorf("you are not an admin of %s on this server: its admins list and download its recordings (assist org add %s YOU --role admin, on the server)", org, org)
	case messenger.IsCode(err, messenger.CodeNotFound):
		return fmt.Errorf("no recording of %s has this id: list them with assist recordings --org %s", org, org)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the server did not answer in time: try again")
	}
	return err
}
