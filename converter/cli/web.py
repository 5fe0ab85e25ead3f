"""`fomm-convert web`: a static site animating pictures in the browser with a bundle."""
from __future__ import annotations

import click

from ..pipeline.web import SITE_FORMATS


@click.command("web")
@click.option("--bundle", type=click.Path(file_okay=False),
              help="Release bundle to take the model files from (checked against its "
                   "manifest first). Without it, --serve serves the site already in --out.")
@click.option("--out", required=True, type=click.Path(),
              help="Site folder to write (or, with --serve and no --bundle, to serve).")
@click.option("--format", "fmt", default="tflite-static", show_default=True,
              type=click.Choice(SITE_FORMATS),
              help="Model files: static TFLite for LiteRT.js (WebGPU or wasm), or ONNX for "
                   "onnxruntime-web (wasm).")
@click.option("--force", is_flag=True, help="Replace a site written earlier in --out.")
@click.option("--serve", is_flag=True,
              help="Then serve it on 127.0.0.1 (cross-origin isolated) until Ctrl-C.")
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="Port for --serve (default: a free one).")
def web_command(bundle, out, fmt, force, serve, port):
    """Write a static web page that animates a picture with the bundle's own files, in the
    browser (a file or the webcam as driving video)."""
    if bundle is None and not serve:
        raise click.UsageError("--bundle is needed to write a site (or pass --serve to "
                               "serve the one in --out)")
    if bundle is not None:
        from ..pipeline.web import write_site
        write_site(bundle, out, fmt, force=force)
        click.echo(f"wrote the site {out} ({fmt} files of {bundle})"
                   + ("" if serve else f"; serve it with: fomm-convert web --out {out} --serve"))
    if serve:
        from ..pipeline.web_server import site_server, url_of
        server = site_server(out, port)
        click.echo(f"serving {out} at {url_of(server)} (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
