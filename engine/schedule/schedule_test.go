package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestQuartz(t *testing.T) {
	tests := map[string]struct {
		cron, quartz, err string
	}{
		"monthly":        {cron: "0 3 1 * *", quartz: "0 0 3 1 * ?"},
		"daily":          {cron: "30 6 * * *", quartz: "0 30 6 * * ?"},
		"weekdays":       {cron: "0 6 * * 1-5", quartz: "0 0 6 ? * MON-FRI"},
		"sunday is 0":    {cron: "0 0 * * 0", quartz: "0 0 0 ? * SUN"},
		"seven refused":  {cron: "0 0 * * 7", err: "above maximum (6)"},
		"list and names": {cron: "15 2 * * 0,3,sat", quartz: "0 15 2 ? * SUN,WED,SAT"},
		"extra spaces":   {cron: " 0  3 1 * * ", quartz: "0 0 3 1 * ?"},
		"both days":      {cron: "0 3 1 * 1", err: "both day-of-month and day-of-week"},
		"six fields":     {cron: "0 0 3 1 * *", err: "has 6 fields, want 5"},
		"descriptor":     {cron: "@daily", err: "has 1 fields, want 5"},
		"bad minute":     {cron: "61 3 1 * *", err: "above maximum"},
		"empty":          {cron: "", err: "has 0 fields"},
		"feb 31":         {cron: "0 0 31 2 *", err: "never fires"},
		"feb 30-31":      {cron: "0 0 30-31 2 *", err: "never fires"},
		"apr jun 31":     {cron: "0 0 31 4,6 *", err: "never fires"},
		"feb 29 leap":    {cron: "0 0 29 2 *", quartz: "0 0 0 29 2 ?"},
		"31 some months": {cron: "0 0 31 4,7 *", quartz: "0 0 0 31 4,7 ?"},
		"last days":      {cron: "0 0 28-31 * *", quartz: "0 0 0 28-31 * ?"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.cron)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error containing %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q, err := s.Quartz()
			if err != nil {
				t.Fatal(err)
			}
			if q != tc.quartz {
				t.Errorf("quartz = %q, want %q", q, tc.quartz)
			}
		})
	}
}

func TestNextActivation(t *testing.T) {
	s, err := Parse("0 3 1 * *")
	if err != nil {
		t.Fatal(err)
	}
	next := s.Sched().Next(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next = %v, want %v", next, want)
	}
}
