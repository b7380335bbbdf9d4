"""CLIP models: loading (zoo, hub cache, local files), zero-shot heads, prompt encoding."""
