package admin

// WaitJob blocks until the import job id has finished (tests only).
func (s *Server) WaitJob(id string) {
	j, _ := s.jobs.get(id)
	if j != nil {
		<-j.done
	}
}
