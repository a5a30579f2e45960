"""Batch prediction over large image sets: a job listed once, cut into shards of N images, each shard
written atomically as JSON Lines with a manifest beside them, so a killed run resumes where it stopped;
the output files are assembled from the shards. Runs on this machine (`engine="local"`) or as a Ray Data
pipeline (`engine="ray"`, the `detforge[ray]` extra).

Modules: `listing` (the job's images), `manifest` (the folder's job), `shards` (plan, atomic shard files),
`result_json` (a result as a shard line), `local` and `ray_engine` (the engines), `decode` (the Ray
pipeline's torch-free decoding tasks), `assemble` (results back from the shards), `job` (all together).
Nothing is imported here, so that Ray's decoding workers import only `decode` (no torch).
"""
