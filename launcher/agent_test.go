package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallAgent: the autostart entry or the user unit, never both.
func TestInstallAgent(t *testing.T) {
	home := t.TempDir()
	auto := filepath.Join(home, "autostart", AgentAutostartFile)
	unit := filepath.Join(home, "systemd", "user", AgentUnitFile)
	p, err := InstallAgent(AgentOptions{Binary: "/opt/my assist/assist", ConfigHome: home})
	if err != nil || p != auto {
		t.Fatalf("InstallAgent: %q, %v", p, err)
	}
	b, err := os.ReadFile(auto)
	if err != nil || !strings.Contains(string(b), "\nExec=\"/opt/my assist/assist\" agent\n") {
		t.Fatalf("autostart entry %q, %v", b, err)
	}
	if p, err = InstallAgent(AgentOptions{Binary: "/usr/bin/assist", ConfigHome: home, Systemd: true}); err != nil || p != unit {
		t.Fatalf("InstallAgent systemd: %q, %v", p, err)
	}
	if _, err := os.Stat(auto); !os.IsNotExist(err) {
		t.Errorf("the autostart entry stayed next to the unit: %v", err)
	}
	if b, _ := os.ReadFile(unit); !strings.Contains(string(b), "\nExecStart=/usr/bin/assist agent\n") || !strings.Contains(string(b), "WantedBy=graphical-session.target") {
		t.Errorf("unit %q", b)
	}
	if _, err := InstallAgent(AgentOptions{Binary: "assist", ConfigHome: home}); err == nil {
		t.Error("a relative binary was installed")
	}
}
