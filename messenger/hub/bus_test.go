package hub_test

import (
	"testing"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/bustest"
)

func TestMemBus(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		// Two hubs in one process may share one MemBus.
		b := hub.NewMemBus()
		t.Cleanup(func() { b.Close() })
		return bustest.Backend{Node: func(*testing.T) hub.Bus { return b }}
	})
}

func TestAggregate(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, messenger.StateOffline},
		{[]string{messenger.StateAway}, messenger.StateAway},
		{[]string{messenger.StateAway, messenger.StateOnline}, messenger.StateOnline},
		{[]string{messenger.StateBusy, messenger.StateOnline, messenger.StateAway}, messenger.StateBusy},
		{[]string{messenger.StateOnline, messenger.StateBusy}, messenger.StateBusy},
	} {
		if got := hub.Aggregate(c.in); got != c.want {
			t.Errorf("Aggregate(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}
