"""The supervisor: one event loop owning the queue, the worker pool and the control socket."""
