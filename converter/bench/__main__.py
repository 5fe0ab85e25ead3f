"""`python -m fomm_convert.bench --worker ...`: one timing worker (worker.py)."""
from .worker import main

main()
