package filetransfer

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// countConn counts the bytes written through it.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestResumeAfterDrop: the connection is closed under a transfer; the
// receiver keeps what arrived, and the same file offered over a new
// connection resumes from there without asking again (the receiver had
// accepted it), sends only the rest, and arrives whole. If the part kept
// no longer matches the sender's file (the hash check), it starts over
// and still arrives whole.
func TestResumeAfterDrop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt bool
	}{{"resumed", false}, {"part differs", true}} {
		t.Run(tc.name, func(t *testing.T) {
			src, rdir := t.TempDir(), t.TempDir()
			const size = 48 << 20
			p, data := writeFile(t, src, "video.mp4", size)
			asked := 0
			ask := func(o Offer) { asked++; o.Accept() }

			a, b := lab.TCPPair(t)
			A, B := pair(t, a, b, Config{}, Config{Dir: rdir, Ask: ask})
			id, err := A.ep.Send(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			B.rec.wait(t, func(ev Event) bool { return ev.ID == id && ev.State == Transferring && ev.Done >= size/3 })
			// The drop: both ends of the connection go at once.
			a.Close()
			b.Close()
			if ev := A.rec.wait(t, final(id)); ev.State != Interrupted {
				t.Fatalf("sender: %+v", ev)
			}
			in := B.rec.wait(t, final(id))
			if in.State != Interrupted {
				t.Fatalf("receiver: %+v", in)
			}
			A.ep.Close()
			B.ep.Close()
			part := filepath.Join(rdir, ".assist-"+hexID(id)+".part")
			fi, err := os.Stat(part)
			if err != nil || fi.Size() < size/3 {
				t.Fatalf("partial file: %v %v", fi, err)
			}
			kept := fi.Size()
			if tc.corrupt {
				f, _ := os.OpenFile(part, os.O_RDWR, 0)
				f.WriteAt([]byte{data[100] ^ 0xff}, 100)
				f.Close()
			}

			a2, b2 := lab.TCPPair(t)
			cc := &countConn{Conn: a2}
			A2, B2 := pair(t, cc, b2, Config{}, Config{Dir: rdir, Ask: ask})
			id2, err := A2.ep.Send(context.Background(), p)
			if err != nil || id2 != id {
				t.Fatalf("second send: %v (id %x, first %x)", err, id2, id)
			}
			out := A2.rec.wait(t, final(id))
			got := B2.rec.wait(t, final(id))
			if out.State != Completed || got.State != Completed {
				t.Fatalf("sender %+v, receiver %+v", out, got)
			}
			sameFile(t, got.Path, data)
			if asked != 1 {
				t.Fatalf("the receiver was asked %d times", asked)
			}
			start := A2.rec.wait(t, func(ev Event) bool { return ev.ID == id && ev.State == Transferring })
			sent := cc.n.Load()
			if tc.corrupt {
				if start.Resumed != 0 || sent < size {
					t.Fatalf("resumed at %d, %d bytes sent, from a part that differs", start.Resumed, sent)
				}
			} else {
				if start.Resumed != uint64(kept) {
					t.Fatalf("resumed at %d, the receiver kept %d", start.Resumed, kept)
				}
				if limit := int64(size) - kept + 64<<10; sent > limit {
					t.Fatalf("%d bytes sent after the drop, want at most %d", sent, limit)
				}
			}
			t.Logf("kept %d bytes, resumed at %d, %d bytes sent on the new connection", kept, start.Resumed, sent)
			if n := listDir(t, rdir); len(n) != 1 || n[0] != "video.mp4" {
				t.Fatalf("receiver's folder: %v", n)
			}
		})
	}
}

func hexID(id ID) string { return hex.EncodeToString(id[:]) }

// TestFreeSpace: an offer bigger than the free space is refused before a
// byte is sent (measured by the injected function, then by the real
// file system: a 1 MiB tmpfs), and a disk that fills up during the
// transfer (the free space misreported) stops it with "the disk is
// full", leaving no partial file.
func TestFreeSpace(t *testing.T) {
	src := t.TempDir()
	p, _ := writeFile(t, src, "photo.jpg", 2<<20)

	t.Run("injected", func(t *testing.T) {
		a, b := lab.TCPPair(t)
		A, B := pair(t, a, b, Config{}, Config{FreeSpace: func(string) (uint64, error) { return 1 << 20, nil }})
		id, _ := A.ep.Send(context.Background(), p)
		ev := A.rec.wait(t, final(id))
		if ev.State != Refused || !strings.Contains(ev.Reason, "not enough free space") {
			t.Fatalf("sender: %+v", ev)
		}
		if n := listDir(t, B.dir); len(n) != 0 {
			t.Fatalf("receiver's folder: %v", n)
		}
	})

	small := smallFS(t)
	t.Run("tmpfs", func(t *testing.T) {
		a, b := lab.TCPPair(t)
		A, _ := pair(t, a, b, Config{}, Config{Dir: small})
		id, _ := A.ep.Send(context.Background(), p)
		ev := A.rec.wait(t, final(id))
		if ev.State != Refused || !strings.Contains(ev.Reason, "not enough free space") {
			t.Fatalf("sender: %+v", ev)
		}
	})
	t.Run("fills up", func(t *testing.T) {
		a, b := lab.TCPPair(t)
		lie := func(string) (uint64, error) { return 1 << 40, nil }
		A, B := pair(t, a, b, Config{}, Config{Dir: small, FreeSpace: lie})
		id, _ := A.ep.Send(context.Background(), p)
		ev := A.rec.wait(t, final(id))
		if ev.State != Cancelled || !strings.Contains(ev.Reason, "the disk is full") {
			t.Fatalf("sender: %+v", ev)
		}
		if in := B.rec.wait(t, final(id)); in.State != Failed {
			t.Fatalf("receiver: %+v", in)
		}
		if n := listDir(t, small); len(n) != 0 {
			t.Fatalf("left on the full disk: %v", n)
		}
	})
}

// smallFS mounts a 1 MiB tmpfs for the test, or skips.
func smallFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}
