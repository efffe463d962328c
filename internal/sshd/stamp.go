package sshd

import "time"

// stamp is a syslog timestamp read field by field, before it becomes an
// instant. Reading the fields ourselves instead of calling time.Parse keeps a
// counting line free of allocations and lets the shape rule be exactly the
// corpus checker's (any number of spaces after the month, fractions of any
// length).
type stamp struct {
	classic bool // "Mon dd hh:mm:ss": no year, no zone
	zoned   bool // RFC 3339 with Z or an offset
	offset  int  // seconds east of UTC when zoned
	year    int  // RFC 3339 only
	month   time.Month
	day     int
	hour    int
	min     int
	sec     int
	nsec    int

	// The offset as written, kept apart so that valid can refuse +24:00
	// or +00:60 once the whole token is known to be a stamp.
	offHour, offMin int
}

// yearTolerance is how far ahead of the reference time a classic stamp may
// be and still keep the reference year: senders whose clocks run ahead must
// not have their lines pushed back a whole year.
const yearTolerance = 24 * time.Hour

// yearsBack bounds the search for a year in which a classic stamp exists.
// Only Feb 29 can be missing from a year, and Gregorian leap years are at
// most 8 years apart (1896, 1904).
const yearsBack = 8

// scanStamp reads the stamp at the start of line and returns it with its
// length; the stamp ends the line or is followed by a space. NoTimestamp
// means the line does not start with a stamp's shape. BadTimestamp means the
// shape is right but the date or time cannot exist (month 13, Apr 31, hour
// 24, second 60: Linux clocks do not show leap seconds, so a ":60" is a
// forged or broken stamp, not a real instant).
func scanStamp(line []byte) (stamp, int, Reason) {
	if len(line) > 0 && isDigit(line[0]) {
		return scanRFC3339(line)
	}
	return scanClassic(line)
}

// scanClassic reads "Mon dd hh:mm:ss" with the day padded by spaces, by a
// zero, or not at all.
func scanClassic(line []byte) (stamp, int, Reason) {
	if len(line) < 4 || line[3] != ' ' {
		return stamp{}, 0, NoTimestamp
	}
	m := monthOf(line[:3])
	if m == 0 {
		return stamp{}, 0, NoTimestamp
	}
	i := 4
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && j-i <= 2 && isDigit(line[j]) {
		j++
	}
	if j == i || j-i > 2 {
		return stamp{}, 0, NoTimestamp
	}
	if len(line) < j+9 || line[j] != ' ' || !isClock(line[j+1:j+9]) {
		return stamp{}, 0, NoTimestamp
	}
	if len(line) > j+9 && line[j+9] != ' ' {
		// "Jan  2 15:04:059": the stamp runs on, so it was not a stamp.
		return stamp{}, 0, NoTimestamp
	}
	c := line[j+1:]
	s := stamp{
		classic: true,
		month:   m,
		day:     atoi(line[i:j]),
		hour:    two(c[0:]),
		min:     two(c[3:]),
		sec:     two(c[6:]),
	}
	if !s.valid() {
		return stamp{}, 0, BadTimestamp
	}
	return s, j + 9, OK
}

// scanRFC3339 reads "YYYY-MM-DDThh:mm:ss[.fraction][Z|±hh:mm]". The stamp
// must be the whole first token of the line.
func scanRFC3339(line []byte) (stamp, int, Reason) {
	if len(line) < 19 || line[4] != '-' || line[7] != '-' || line[10] != 'T' ||
		!isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) || !isDigit(line[3]) ||
		!isDigit(line[5]) || !isDigit(line[6]) || !isDigit(line[8]) || !isDigit(line[9]) ||
		!isClock(line[11:19]) {
		return stamp{}, 0, NoTimestamp
	}
	s := stamp{
		year:  atoi(line[0:4]),
		month: time.Month(two(line[5:])),
		day:   two(line[8:]),
		hour:  two(line[11:]),
		min:   two(line[14:]),
		sec:   two(line[17:]),
	}
	i := 19
	if i < len(line) && line[i] == '.' {
		j := i + 1
		scale := int(time.Second)
		for j < len(line) && isDigit(line[j]) {
			// Digits past the nanosecond are read and dropped: the shape
			// allows any number of them.
			if scale > 1 {
				scale /= 10
				s.nsec += int(line[j]-'0') * scale
			}
			j++
		}
		if j == i+1 {
			return stamp{}, 0, NoTimestamp
		}
		i = j
	}
	if i < len(line) {
		switch line[i] {
		case 'Z':
			s.zoned = true
			i++
		case '+', '-':
			z := line[i:]
			if len(z) < 6 || !isDigit(z[1]) || !isDigit(z[2]) || z[3] != ':' || !isDigit(z[4]) || !isDigit(z[5]) {
				return stamp{}, 0, NoTimestamp
			}
			s.zoned = true
			s.offHour, s.offMin = two(z[1:]), two(z[4:])
			s.offset = s.offHour*3600 + s.offMin*60
			if z[0] == '-' {
				s.offset = -s.offset
			}
			i += 6
		}
	}
	if i < len(line) && line[i] != ' ' {
		return stamp{}, 0, NoTimestamp
	}
	if !s.valid() {
		return stamp{}, 0, BadTimestamp
	}
	return s, i, OK
}

// valid reports whether the fields can name a real instant. A classic stamp
// has no year yet, so Feb 29 passes here and resolve finds a leap year.
func (s stamp) valid() bool {
	if s.month < time.January || s.month > time.December || s.day < 1 ||
		s.hour > 23 || s.min > 59 || s.sec > 59 || s.offHour > 23 || s.offMin > 59 {
		return false
	}
	if s.classic {
		return s.day <= daysIn(s.month, 2000)
	}
	return s.day <= daysIn(s.month, s.year)
}

// resolve turns the stamp into an instant in loc. A classic stamp takes the
// latest year in which it is not more than yearTolerance after ref, so a
// "Dec 31" line read on Jan 1 lands in the year before, and "Jan 1 00:10"
// read at "Dec 31 23:50" in the year after.
func (s stamp) resolve(ref time.Time, loc *time.Location) (time.Time, bool) {
	if !s.classic {
		if !s.zoned {
			return time.Date(s.year, s.month, s.day, s.hour, s.min, s.sec, s.nsec, loc), true
		}
		// time.FixedZone would allocate a Location per line; shifting a
		// UTC instant by the offset gives the same instant for free.
		t := time.Date(s.year, s.month, s.day, s.hour, s.min, s.sec, s.nsec, time.UTC)
		return t.Add(-time.Duration(s.offset) * time.Second).In(loc), true
	}
	limit := ref.Add(yearTolerance)
	ry := ref.In(loc).Year()
	for y := ry + 1; y >= ry-yearsBack; y-- {
		if s.day > daysIn(s.month, y) {
			continue
		}
		t := time.Date(y, s.month, s.day, s.hour, s.min, s.sec, 0, loc)
		if !t.After(limit) {
			return t, true
		}
	}
	return time.Time{}, false
}

func monthOf(b []byte) time.Month {
	switch string(b) { // no allocation: the compiler compares in place
	case "Jan":
		return time.January
	case "Feb":
		return time.February
	case "Mar":
		return time.March
	case "Apr":
		return time.April
	case "May":
		return time.May
	case "Jun":
		return time.June
	case "Jul":
		return time.July
	case "Aug":
		return time.August
	case "Sep":
		return time.September
	case "Oct":
		return time.October
	case "Nov":
		return time.November
	case "Dec":
		return time.December
	}
	return 0
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// isClock reports whether b is "hh:mm:ss" in shape (ranges are checked by
// valid).
func isClock(b []byte) bool {
	return len(b) == 8 && b[2] == ':' && b[5] == ':' &&
		isDigit(b[0]) && isDigit(b[1]) && isDigit(b[3]) && isDigit(b[4]) && isDigit(b[6]) && isDigit(b[7])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// two reads the two ASCII digits at the start of b.
func two(b []byte) int { return int(b[0]-'0')*10 + int(b[1]-'0') }

// atoi reads a short run of ASCII digits (callers bound its length).
func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}
