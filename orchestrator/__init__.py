"""edgebench: what small language models cost on edge boards.

Where each thing lives:
    cli.py, commands/    the `edgebench` command; one module per subcommand, parse options and print only;
                         no command imports another: cliopts.py the grammar (--reports-dir, --format, hidden
                         old spellings), runprint.py a measuring command's progress and summary, batchargs.py
                         what follows `batch --`, exitcodes.py every exit code (docs/cli.md)
    runconfig.py         the one resolver of a RunConfig (options, a plan's settings, a batch's or manifest's record)
    measuring.py         the one wrapper of a measuring command: the lock, signals, Ctrl-C's hint, exit codes;
                         resumepolicy.py what a resume refuses
    session.py           a measuring session: checks, the query loop, the one place a record is built, resume checks
    planning.py          a run's plan: query selection, items (query, variant, phase, repetition), their keys
    runfacts.py          what a run measures with (binary, model, platform, provenance): manifest, resume, doctor
    config.py            the run's frozen configuration; its field defaults are the only defaults of a run
    measurelock.py       one measurement per machine; interrupts.py: signals that end a run cleanly
    bench.py             `edgebench bench`: what edgebench itself costs
    fields.py            the record vocabulary: every field of a query record and a sampler reading (type, unit,
                         meaning, writer); fieldsdoc.py generates docs/' field tables from it
    experiments/         the study's plans (orchestrator/data/plans/, plans.py): rules.py the selection rules,
                         resolve.py a plan made concrete, runner.py a plan run as a session and `experiment all`;
                         index.py owns experiment.json and tells a part's role from its recorded plan;
                         discover.py which unfinished `experiment all` a new one finishes
    batch.py, cron.py    unattended batches: resume-by-default, the openers of a batch's run; edgebench's crontab lines
    diskspace.py         room on the run's disk: the floor, a query's budget, the one disk-full message
    runs.py              listing and pruning run folders
    fleet.py             `edgebench fleet`: deploy/'s Ansible playbooks run through ansible-playbook; its exit codes
    report/              `edgebench report` and `serve` (polars, plotnine, Jinja2; never imported by a run):
                         verdict.py the answer against --slo, querypages.py the per-query pages, merge.py one page
                         across boards (--merge), replay.py
                         run folders replayed through the real session for report tests and the render bench
    nanocheck/           `make nano-check`: the Nano's CUDA build and its CPU, proven on an x86 host
    engine/              inference engines behind one seam (base.py: argv, then an Outcome of data); llama_main.py
                         the llama.cpp `main` one: spawn on a pty, parsed logs, metrics; vocab.py each token's bytes
    sampling/            samplers that read the machine while a query runs (process: RSS, CPU; GPU and board:
                         jtop, tegrastats, sysfs, nvml; registry.py names them, autodetect.py picks one,
                         derive.py makes per-query figures, idle.py measures the idle board's power)
    board.py             the board's state at run start and finish (power mode, clocks, caps), with warnings
    store.py             the run folder (manifest, queries.jsonl, samples.jsonl, raw/) and its reader; the only
                         module that names a run-folder file
    stats.py, summary.py the one statistics engine, and the end-of-run summary (templates/summary.html)
    slo.py               the latency budget (--slo): parsed alike for `load` (which measures) and the report
    bootstrap/           the steps that fetch, patch and build llama.cpp and get a model (profiles.py: which steps a
                         board runs, in order); the ledger
    workloads/           workload files: schema, the study's builder, its datasets, tokencount.py prompt token
                         counts, lengths.py the prompt-length table
    doctor.py            what is installed and what is missing
    ggufile.py           everything read from a GGUF file (header, figures, completeness)
    sysinfo.py           what machine this is (CPU, memory, Jetson module, L4T, power mode)
    fsutil.py            atomic writes and the one tar extractor
    net.py, paths.py     downloads; where build/, reports/ and the cache are
    errors.py            UserError: an expected failure and the command that fixes it
    packaged.py          the files shipped in the package (data/), read through importlib.resources
    data/                the llama.cpp patch, the study's plans, the default workload, the board
                         scripts and pip constraints: package data, so a wheel is a complete install
"""

__version__ = "0.1.0"
