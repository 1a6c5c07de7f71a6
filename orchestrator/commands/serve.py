"""`edgebench serve`: browse reports/ from a laptop through an SSH tunnel."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator import paths


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default is reachable only through an SSH tunnel.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--dir", "folder", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder to serve (default: reports/).")
def serve(host, port, folder):
    """Serve the rendered reports read-only (GET and HEAD, files under reports/ only)."""
    from orchestrator.report.serve import local_only, make_server, tunnel_line, url_host

    server = make_server(folder or paths.reports_dir(), host, port)
    port = server.server_address[1]
    click.echo(f"serving {folder or paths.reports_dir()} read-only on http://{url_host(host)}:{port}/")
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
