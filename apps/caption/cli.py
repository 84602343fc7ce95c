"""`suite caption` (under construction)."""
import click


@click.group()
def cli():
    """caption app (under construction)."""
