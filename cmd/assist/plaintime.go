package main

import (
	"fmt"
	"time"
)

// plainUntil says when t is, from now, the way a person says it: local
// time, the day only when it is not today, and how long that is from
// now ("until 6:27PM, in 1 hour"). The "expires:" line keeps RFC 3339 for
// scripts; this is the line a person reads.
func plainUntil(now, t time.Time) string { return plainUntilIn(now, t, time.Local) }

// plainUntilIn is plainUntil in the time zone loc. (Tests pass their own:
// changing time.Local races with every goroutine that reads the time.)
func plainUntilIn(now, t time.Time, loc *time.Location) string {
	now, t = now.In(loc), t.In(loc)
	when := t.Format(time.Kitchen)
	y1, m1, d1 := now.Date()
	if y2, m2, d2 := t.Date(); y1 != y2 || m1 != m2 || d1 != d2 {
		when = t.Format("Mon 2 Jan ") + when
	}
	return fmt.Sprintf("until %s, in %s", when, plainDuration(t.Sub(now)))
}

// plainDuration rounds d to what a person would say: minutes under two
// hours, hours under two days, days after that.
func plainDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < 2*time.Hour:
		return plural(int((d+30*time.Second)/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int((d+30*time.Minute)/time.Hour), "hour")
	default:
		return plural(int((d+12*time.Hour)/(24*time.Hour)), "day")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
