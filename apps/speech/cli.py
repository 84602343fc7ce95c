"""`suite speech` (under construction)."""
import click


@click.group()
def cli():
    """speech app (under construction)."""
