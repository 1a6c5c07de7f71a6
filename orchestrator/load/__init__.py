"""`edgebench load`: the resident server under concurrent load, at arrival rates one after another
(docs/load.md).

    profile.py   arrival schedules on absolute deadlines: synchronous, concurrency N, constant rate, Poisson
    client.py    the threaded client: one streamed POST /completion per request, sent on its deadline
    point.py     one load point's figures from its requests: percentiles, throughput, goodput; the knee
    sweep.py     the load points in order with one server, each request on disk before the next point; resume
    format.py    the load folder's file and key names, its writer and reader

The measuring side (client, sweep) never imports polars; orchestrator/report/loadpage.py draws it."""
