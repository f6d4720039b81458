"""kbshell: the imperative shell that drives the kbcore kernel against real clusters."""
