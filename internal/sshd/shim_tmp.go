package sshd

import "time"

const NumReasons = int(NotInvalidUser) + 1

type Options struct {
	Location      *time.Location
	MaxAge        time.Duration
	MaxValueBytes int
}

type Parser struct{ o Options }

func New(o Options) *Parser { return &Parser{o: o} }

func (p *Parser) Parse(line []byte, ref time.Time) (Event, Reason) {
	return Parse(line, ref, p.o.Location)
}
