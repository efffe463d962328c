package web

import "context"

func (s *Server) Run(ctx context.Context) error { return s.Serve(ctx) }
