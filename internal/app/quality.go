package app

import (
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/quality"
)

// qualityJobs registers the data-quality workers (D5) and returns their periodic sweep: every
// quality.SweepInterval the leader queues a check of each dataset whose active version has no
// report yet (the dataset engine publishes no event when a load completes) or whose
// timeliness verdict has changed. The sweep inserts into the node's queue, which exists by the
// time any job runs.
func (a *App) qualityJobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	return a.Quality.RegisterJobs(workers, func() quality.Queue {
		if a.queue == nil {
			return nil
		}
		return a.queue
	}, quality.SweepInterval)
}
