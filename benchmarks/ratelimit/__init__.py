"""How close to a server's rate limit a bulk job finishes, with and without the shared store."""
