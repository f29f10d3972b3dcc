package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
)

// Timezone is the timezone of every pipectl schedule: GitHub Actions cron
// runs in UTC, so the Databricks job schedule does too.
const Timezone = "UTC"

// Schedule is a validated 5-field cron expression.
type Schedule struct {
	fields [5]string
	sched  cron.Schedule
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Parse validates a 5-field cron expression: minute, hour, day of month,
// month, day of week. Descriptors (@daily) and 6-field expressions are
// refused because GitHub Actions does not take them.
func Parse(expr string) (*Schedule, error) {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return nil, fmt.Errorf("schedule %q has %d fields, want 5: minute hour day-of-month month day-of-week (UTC), e.g. \"0 3 1 * *\"", expr, len(f))
	}
	s, err := parser.Parse(strings.Join(f, " "))
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", expr, err)
	}
	if spec, ok := s.(*cron.SpecSchedule); ok && !firesSomeDay(spec) {
		return nil, fmt.Errorf("schedule %q %w: no month in %q has a day %s", expr, ErrNeverFires, f[3], f[2])
	}
	out := &Schedule{sched: s}
	copy(out.fields[:], f)
	if _, err := out.Quartz(); err != nil {
		return nil, err
	}
	return out, nil
}

// ErrNeverFires is returned for a valid expression that names no real
// date, such as February 31.
var ErrNeverFires = errors.New("never fires")

// daysIn is the longest each month gets (February in a leap year).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// firesSomeDay reports whether some day of the month field falls in some
// month of the month field: "0 0 31 2 *" and "0 0 31 4,6 *" never fire.
// A restricted day of the week with day-of-month "*" always fires (and
// both restricted is refused by Quartz).
func firesSomeDay(s *cron.SpecSchedule) bool {
	for m := 1; m <= 12; m++ {
		if s.Month&(1<<uint(m)) == 0 {
			continue
		}
		for d := 1; d <= daysIn[m]; d++ {
			if s.Dom&(1<<uint(d)) != 0 {
				return true
			}
		}
	}
	return false
}

// GitHub returns the expression for on.schedule.cron in a workflow.
func (s *Schedule) GitHub() string { return strings.Join(s.fields[:], " ") }

// String is the canonical expression.
func (s *Schedule) String() string { return s.GitHub() }

// Sched is the parsed schedule, to compute next activation times.
func (s *Schedule) Sched() cron.Schedule { return s.sched }

// Quartz renders the schedule for a Databricks job's
// quartz_cron_expression: seconds first, one of day-of-month and
// day-of-week is "?", and days of the week are names (Quartz counts
// Sunday as 1, POSIX as 0).
func (s *Schedule) Quartz() (string, error) {
	minute, hour, dom, month, dow := s.fields[0], s.fields[1], s.fields[2], s.fields[3], s.fields[4]
	switch {
	case dow == "*" || dow == "?":
		dow = "?"
	case dom == "*" || dom == "?":
		dom = "?"
	default:
		// POSIX cron runs when EITHER matches; Quartz cannot say that.
		return "", fmt.Errorf("schedule %q sets both day-of-month and day-of-week: Databricks (Quartz) cron cannot express that; use one of them and * for the other", s.GitHub())
	}
	if dow != "?" {
		var err error
		if dow, err = quartzDow(dow); err != nil {
			return "", fmt.Errorf("schedule %q: %v", s.GitHub(), err)
		}
	}
	return strings.Join([]string{"0", minute, hour, dom, month, dow}, " "), nil
}

var dowNames = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

// quartzDow maps POSIX day-of-week numbers (0-7, Sunday 0 or 7) to names,
// inside lists, ranges and steps.
func quartzDow(f string) (string, error) {
	var parts []string
	for _, item := range strings.Split(f, ",") {
		step := ""
		if i := strings.Index(item, "/"); i >= 0 {
			item, step = item[:i], item[i:]
		}
		var conv []string
		for _, bound := range strings.Split(item, "-") {
			if bound == "*" {
				conv = append(conv, "*")
				continue
			}
			n, err := strconv.Atoi(bound)
			if err != nil {
				conv = append(conv, strings.ToUpper(bound)) // already a name
				continue
			}
			if n < 0 || n > 7 {
				return "", fmt.Errorf("day-of-week %d is out of range 0-7", n)
			}
			conv = append(conv, dowNames[n])
		}
		parts = append(parts, strings.Join(conv, "-")+step)
	}
	return strings.Join(parts, ","), nil
}
