"""Serving: a discrete-event simulator of a batching image server, and capacity planning on it."""
