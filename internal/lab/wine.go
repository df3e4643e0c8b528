package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Wine is a Wine prefix of the test's own whose programs share one
// virtual desktop, drawn as a window on an Xvfb server: the Windows
// desktop the screen/windows tests capture and drive.
type Wine struct {
	Prefix string
	X      *X
	// Size is the virtual desktop's size; it fills the Xvfb screen from
	// its top-left corner.
	Size [2]int
	// Desktop is the X window that shows the virtual desktop.
	Desktop *Window
	server  *Proc
}

// wineDesktop is the name of the virtual desktop every program of a lab
// prefix runs on.
const wineDesktop = "Lab"

// StartWine makes a fresh Wine prefix (about 10 s and 700 MB, removed on
// cleanup), puts the ProcessPrng stub in it when Wine lacks one, sets
// every program to run on a virtual desktop the size of x's screen, shows
// that desktop, and keeps a wineserver running until cleanup. It skips
// the test when Wine, xdotool or MinGW (for the stub) is not installed.
func StartWine(t testing.TB, x *X) *Wine {
	t.Helper()
	Need(t, "wine", "wineserver", "wineboot", "xdotool")
	dir := t.TempDir()
	w := &Wine{Prefix: filepath.Join(dir, "prefix"), X: x, Size: [2]int{x.Size.X, x.Size.Y}}
	start := time.Now()
	if err := os.Mkdir(w.Prefix, 0o700); err != nil {
		t.Fatalf("lab: wine prefix: %v", err)
	}
	// A persistent wineserver for the whole test: each wine command would
	// otherwise start and stop one, and the virtual desktop with it.
	w.server = Start(t, w.Env(), "wineserver", "--foreground", "--persistent")
	t.Cleanup(func() {
		// Every Windows process of the prefix ends with its server.
		kill := exec.Command("wineserver", "--kill")
		kill.Env = append(os.Environ(), w.Env()...)
		kill.Run()
		w.server.Stop()
	})
	w.run(t, 2*time.Minute, "wineboot", "--init")
	if needsPrngStub(t, w) {
		Need(t, "x86_64-w64-mingw32-gcc")
		src := filepath.Join(ModuleRoot(t), "internal", "lab", "winestub", "bcryptprimitives.c")
		dll := filepath.Join(w.Prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
		Run(t, nil, "x86_64-w64-mingw32-gcc", "-shared", "-O2", "-s", "-o", dll, src, "-ladvapi32")
	}
	// The desktop is named for the lab, not "Default": that is the name
	// of the window station's own desktop, which wineboot's explorer
	// already holds as a plain X desktop, and an explorer asked for
	// /desktop=Default while that one lives finds it there and shows no
	// virtual desktop at all (what made the Wine tests fail when
	// wineboot's explorer happened to outlive the reg commands).
	w.run(t, time.Minute, "wine", "reg", "add", `HKCU\Software\Wine\Explorer`, "/v", "Desktop", "/d", wineDesktop, "/f")
	w.run(t, time.Minute, "wine", "reg", "add", `HKCU\Software\Wine\Explorer\Desktops`, "/v", wineDesktop, "/d", fmt.Sprintf("%dx%d", x.Size.X, x.Size.Y), "/f")
	// The desktop runs in an explorer of its own: started by a test's
	// first program instead, it would inherit that program's output and
	// hold its pipes open after it exits.
	Start(t, w.Env(), "wine", "explorer", fmt.Sprintf("/desktop=%s,%dx%d", wineDesktop, x.Size.X, x.Size.Y))
	w.Desktop = x.FindWindow(t, wineDesktop+" - Wine desktop")
	t.Logf("lab: wine prefix ready in %v", time.Since(start).Round(100*time.Millisecond))
	return w
}

// needsPrngStub reports whether this Wine lacks bcryptprimitives.dll.
func needsPrngStub(t testing.TB, w *Wine) bool {
	t.Helper()
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu/wine/x86_64-windows", "/usr/lib/wine/x86_64-windows", "/opt/wine-stable/lib/wine/x86_64-windows"} {
		if _, err := os.Stat(filepath.Join(dir, "bcryptprimitives.dll")); err == nil {
			return false
		}
	}
	return true
}

// Env is the environment of programs in this prefix: its path, its X
// server, Wine's debug channels off (they would fill the test log), and
// no prompts to install Mono or Gecko.
func (w *Wine) Env() []string {
	return append(w.X.Env(), "WINEPREFIX="+w.Prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=", "WINEARCH=win64")
}

// Run runs a Windows program (a path on this machine, or a program of
// the prefix such as msiexec) to completion and returns its error, with
// its output in it.
func (w *Wine) Run(t testing.TB, timeout time.Duration, exe string, args ...string) error {
	t.Helper()
	return w.exec(timeout, "wine", append([]string{exe}, args...)...)
}

// run runs a Wine tool to completion and fails the test if it fails.
func (w *Wine) run(t testing.TB, timeout time.Duration, name string, args ...string) {
	t.Helper()
	if err := w.exec(timeout, name, args...); err != nil {
		t.Fatal(err)
	}
}

func (w *Wine) exec(timeout time.Duration, name string, args ...string) error {
	// Output goes to a file, not a pipe: Wine's services (started by the
	// first command, living as long as the wineserver) inherit it, and a
	// pipe would keep Wait waiting for them.
	out, err := os.CreateTemp("", "assist-wine-*.log")
	if err != nil {
		return fmt.Errorf("lab: %s: %v", name, err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), w.Env()...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	output := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("lab: %s %s: %v: %s", name, strings.Join(args, " "), err, output())
		}
		return nil
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("lab: %s %s did not finish in %v: %s", name, strings.Join(args, " "), timeout, output())
	}
}

// Start starts a Windows program (a path on this machine) in the prefix,
// stopped on cleanup.
func (w *Wine) Start(t testing.TB, env []string, exe string, args ...string) *Proc {
	t.Helper()
	return Start(t, append(w.Env(), env...), "wine", append([]string{exe}, args...)...)
}

// Command returns an exec.Cmd that runs a Windows program in the prefix.
// Give it files, not buffers, for output (see run), or use Start.
func (w *Wine) Command(env []string, exe string, args ...string) *exec.Cmd {
	cmd := exec.Command("wine", append([]string{exe}, args...)...)
	cmd.Env = append(append(os.Environ(), w.Env()...), env...)
	return cmd
}

// BuildWindows builds a Go package for windows/amd64 without cgo into
// dir and returns the .exe's path; with test set, it builds the
// package's test binary (go test -c).
func BuildWindows(t testing.TB, dir, pkg string, test bool) string {
	t.Helper()
	Need(t, "go")
	out := filepath.Join(dir, filepath.Base(pkg)+".exe")
	args := []string{"build", "-o", out, pkg}
	if test {
		args = []string{"test", "-c", "-o", out, pkg}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lab: GOOS=windows go %s: %v: %s", strings.Join(args, " "), err, b)
	}
	return out
}
