"""The search-efficiency benchmark, one module per concern.

- :mod:`search.tables`: tables of real learning curves (collected once, replayed many times);
- :mod:`search.problems`: the problems (a space and a way to train its configurations);
- :mod:`search.ledger`: the step budget of one search and what it found;
- :mod:`search.methods`: every search method, each run at the same step budget;
- :mod:`search.runner`: methods x problems x budgets x seeds, with stored outcomes;
- :mod:`search.report`: tables (pandas), paired tests (scipy), figures (matplotlib).

``python bench/search_efficiency.py`` runs it and writes bench/RESULTS.md and the summary
blocks of bench/README.md.
"""
