"""`edgebench serve`: browse reports/ from a laptop through an SSH tunnel."""

from __future__ import annotations

import click

from orchestrator import cliopts, paths


@click.command(cls=cliopts.Command)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default is reachable only through an SSH tunnel.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@cliopts.reports_dir_option("Folder to serve (default: reports/).", alias_of=("--dir",))
def serve(host, port, reports_dir):
    """Serve the rendered reports read-only (GET and HEAD, files under reports/ only)."""
    from orchestrator.report.serve import local_only, make_server, tunnel_line, url_host

    folder = reports_dir or paths.reports_dir()
    server = make_server(folder, host, port)
    port = server.server_address[1]
    click.echo(f"serving {folder} read-only on http://{url_host(host)}:{port}/")
    if local_only(host):
        click.echo("listening on this machine only; from a laptop, open a tunnel:")
        click.echo(f"  {tunnel_line(host, port)}")
    else:
        click.echo(f"warning: listening on {host}: anyone who can reach this address can read the reports", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
