package mailer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// SettingsFile is the name of the SMTP settings file in the user's Assist
// config directory (beside identity's config.json).
const SettingsFile = "mail.json"

// maxSettings bounds the settings file.
const maxSettings = 64 << 10

// Settings are the saved SMTP settings: mail.json, for example
//
//	{"host": "smtp.example.com", "port": 587, "security": "starttls",
//	 "user": "grandma@example.com", "password_file": "/home/grandma/.smtp-pass"}
//
// A "password" may be written in the file itself only if no other user can
// read it (mode 0600), as with ssh keys.
type Settings struct {
	Host         string `json:"host,omitempty"`
	Port         int    `json:"port,omitempty"`
	Security     string `json:"security,omitempty"`
	User         string `json:"user,omitempty"`
	From         string `json:"from,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	Password     string `json:"password,omitempty"`
}

// LoadSettings reads a settings file. A missing file is empty Settings.
func LoadSettings(path string) (*Settings, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Settings{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	if fi.Size() > maxSettings {
		return nil, fmt.Errorf("mailer: %s is over %d bytes", path, maxSettings)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("mailer: reading %s: %w", path, err)
	}
	s, err := ParseSettings(data)
	if err != nil {
		return nil, fmt.Errorf("mailer: %s: %w", path, err)
	}
	if s.Password != "" && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("mailer: %s holds a password and other users can read it: run chmod 600 %s", path, path)
	}
	return s, nil
}

// ParseSettings parses the contents of a settings file, strictly: an
// unknown member is most likely a typo that would otherwise be ignored.
func ParseSettings(data []byte) (*Settings, error) {
	if len(data) > maxSettings {
		return nil, fmt.Errorf("over %d bytes", maxSettings)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Settings
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("not valid mail settings: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not valid mail settings: data after the JSON object")
	}
	if s.Port < 0 || s.Port > 65535 {
		return nil, fmt.Errorf("port %d is not a port number", s.Port)
	}
	if _, err := ParseSecurity(s.Security); err != nil {
		return nil, err
	}
	return &s, nil
}

// SMTP turns the settings into an account to send with, reading the
// password file if one is named.
func (s *Settings) SMTP() (*SMTP, error) {
	sec, err := ParseSecurity(s.Security)
	if err != nil {
		return nil, err
	}
	out := &SMTP{Host: s.Host, Port: s.Port, Security: sec, Username: s.User, From: s.From, Password: s.Password}
	if s.PasswordFile != "" {
		if out.Password, err = ReadPasswordFile(s.PasswordFile); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadPasswordFile reads a password from the first line of a file.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the SMTP password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	p := strings.TrimRight(line, "\r")
	if p == "" {
		return "", fmt.Errorf("the SMTP password file %s is empty: put the password on its first line", path)
	}
	return p, nil
}
