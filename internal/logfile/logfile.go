// Package logfile decides where assist's log lines go. A person at a
// terminal needs the code, the question, the state and the chat, not the
// program's diary, so by default the diary goes to a file in the user's
// state directory; --verbose or ASSIST_LOG sends it to stderr instead, as
// developers and scripts expect.
package logfile

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// EnvStateDir overrides the state directory (tests, portable installs).
const EnvStateDir = "ASSIST_STATE_DIR"

// EnvLevel is the environment variable that sends the log to stderr at the
// level it names (debug, info, warn, error).
const EnvLevel = "ASSIST_LOG"

// Name is the log file's name inside the state directory.
const Name = "assist.log"

// maxSize is the size above which the log is moved to Name+".1" when a
// command starts, so the file cannot grow without bound over months of use
// and the previous run's lines are still there to read.
const maxSize = 4 << 20

// StateDir returns the directory for assist's log: $ASSIST_STATE_DIR, else
// $XDG_STATE_HOME/assist, else ~/.local/state/assist (the XDG base
// directory specification's place for logs and history).
func StateDir() (string, error) {
	if d := os.Getenv(EnvStateDir); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "assist"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the log file: %w", err)
	}
	return filepath.Join(home, ".local", "state", "assist"), nil
}

// Options say where a command's log goes.
type Options struct {
	// Verbose sends the log to Stderr at info level (debug if EnvLevel
	// says so).
	Verbose bool
	// ToStderr sends the log to Stderr whatever else is set: servers
	// and tools run under a service manager, which keeps stderr.
	ToStderr bool
	// Stderr is where the log goes when not to the file.
	Stderr io.Writer
}

// Log is an opened log.
type Log struct {
	Logger *slog.Logger
	// Path is the file the log goes to, empty when it goes to stderr.
	Path string
	// Err says why the file could not be opened, when it could not: the
	// log then goes to stderr at warn level.
	Err  error
	file *os.File
}

// Close closes the file, if any.
func (l *Log) Close() error {
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}

// Level parses a level name as ASSIST_LOG takes it; ok is false for an
// empty or unknown name.
func Level(s string) (level slog.Level, ok bool) {
	if strings.TrimSpace(s) == "" {
		return slog.LevelInfo, false
	}
	if err := level.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return slog.LevelInfo, false
	}
	return level, true
}

// Open opens the log as opts and the environment say. It always returns a
// usable Log: when the file cannot be opened (a read-only home, say) the
// log goes to stderr at warn level, so only what matters interrupts the
// person, and Log.Err says why.
func Open(opts Options) *Log {
	level, fromEnv := Level(os.Getenv(EnvLevel))
	if opts.ToStderr || opts.Verbose || fromEnv {
		return &Log{Logger: slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: level}))}
	}
	path, f, err := openFile()
	if err != nil {
		return &Log{Logger: slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Err: err}
	}
	return &Log{Logger: slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level})), Path: path, file: f}
}

func openFile() (string, *os.File, error) {
	dir, err := StateDir()
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("cannot create the log directory: %w", err)
	}
	path := filepath.Join(dir, Name)
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxSize {
		if err := os.Rename(path, path+".1"); err != nil {
			return "", nil, fmt.Errorf("cannot rotate the log file: %w", err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("cannot read the log file: %w", err)
	}
	// 0600: the log names contacts, addresses and servers.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("cannot open the log file: %w", err)
	}
	return path, f, nil
}
