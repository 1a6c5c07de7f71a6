"""edgebench: what small language models cost on edge boards.

Where each thing lives:
    cli.py, commands/    the `edgebench` command; one module per subcommand, parse options and print only
    session.py           a measuring session: checks, run folder, plan of items, the query loop, resume checks
    config.py            the run's frozen configuration
    measurelock.py       one measurement per machine; interrupts.py: signals that end a run cleanly
    bench.py             `edgebench bench`: what edgebench itself costs
    experiments/         the study's experiment plans (workloads/plans/): selection rules, gating, `experiment all`
    batch.py, cron.py    unattended batches: resume-by-default; edgebench's crontab lines
    diskspace.py         room on the run's disk: the floor, a query's budget, the one disk-full message
    runs.py              listing and pruning run folders
    report/              `edgebench report` and `serve` (polars, plotnine, Jinja2; never imported by a run)
    nanocheck/           `make nano-check`: the Nano's CUDA build and its CPU, proven on an x86 host
    engine/              the llama.cpp `main` adapter: argv, spawn on a pty, parsed logs, token bytes, metrics
    sampling/            samplers that read the machine while a query runs (process: RSS, CPU; GPU and board:
                         jtop, tegrastats, sysfs, nvml; select.py picks one, derive.py makes per-query figures)
    board.py             the board's state at run start and finish (power mode, clocks, caps), with warnings
    store.py             the run folder (manifest, queries.jsonl, samples.jsonl, raw/) and its reader
    stats.py, summary.py statistics and the end-of-run summary (templates/summary.html)
    bootstrap/           the steps that fetch, patch and build llama.cpp and get a model; the ledger
    workloads/           workload files: schema, the study's builder, its datasets, token counts
    doctor.py            what is installed and what is missing
    ggufile.py           everything read from a GGUF file (header, figures, completeness)
    sysinfo.py           what machine this is (CPU, memory, Jetson module, L4T, power mode)
    fsutil.py            atomic writes and the one tar extractor
    net.py, paths.py     downloads; where build/, reports/ and the cache are
    errors.py            UserError: an expected failure and the command that fixes it
    data/patches/        the patch applied to llama.cpp (shipped in the package)
"""

__version__ = "0.1.0"
