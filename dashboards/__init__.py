"""HTML reports and plots built from the results DataFrame (see sweeper.tracking.results)."""
