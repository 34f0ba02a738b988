package localpod

// FetcherPID is the fetcher process's id (0 before it started), for
// reading its memory from /proc.
func (p *Pod) FetcherPID() int {
	if p.fetcher == nil || p.fetcher.Process == nil {
		return 0
	}
	return p.fetcher.Process.Pid
}
