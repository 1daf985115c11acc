"""Go pprof profiles read without Go: the decoder, the analyses (top, folded stacks, flame tree, diff) and
the renderers the CLI and the proxy share."""
