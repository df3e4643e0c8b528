package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/assist-project/assist/launcher"
)

func runInstallDesktop(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("install-desktop", os.Stderr)
	uninstall := fs.Bool("uninstall", false, "remove the menu entry and the link handler instead")
	binary := fs.String("binary", "", "the assist binary the entries start (default: this one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *uninstall {
		removed, err := launcher.Uninstall(launcher.Options{})
		for _, p := range removed {
			fmt.Fprintf(stdout, "removed: %s\n", p)
		}
		return err
	}
	bin := *binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this program to start from the menu: %w (pass --binary PATH)", err)
		}
		if bin, err = filepath.EvalSymlinks(exe); err != nil {
			return fmt.Errorf("finding this program to start from the menu: %w (pass --binary PATH)", err)
		}
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	r, err := launcher.Install(launcher.Options{Binary: bin})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "menu entry: %s\n", r.App)
	fmt.Fprintf(stdout, "link handler: %s\n", r.Link)
	if r.Default {
		fmt.Fprintf(stdout, "assist:// links now open with %s\n", launcher.LinkFile)
	} else {
		fmt.Fprintf(os.Stderr, "note: %s\n", r.Note)
	}
	return nil
}
