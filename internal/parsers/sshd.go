package parsers

import (
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// sshdEntry registers the sshd "Invalid user" parser (SPEC §5).
func sshdEntry() Entry {
	reasons := make([]string, sshd.NumReasons)
	for r := range sshd.NumReasons {
		reasons[r] = sshd.Reason(r).String()
	}
	reasons[sshd.OK] = ""
	return Entry{
		Name:    "sshd",
		Reasons: reasons,
		New: func(o Options) Parser {
			return sshdParser{p: sshd.New(sshd.Options{Location: o.Location, MaxAge: o.MaxAge, MaxValueBytes: o.MaxValueBytes})}
		},
	}
}

type sshdParser struct{ p *sshd.Parser }

func (s sshdParser) Parse(line []byte, ref time.Time) (Event, int) {
	ev, r := s.p.Parse(line, ref)
	if r != sshd.OK {
		return Event{}, int(r)
	}
	return Event{Time: ev.Time, Host: ev.Host, User: ev.User, Src: ev.Src}, 0
}
