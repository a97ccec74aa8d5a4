"""Pure analysis over results DataFrames: statistics, comparisons, history, recommendations."""
