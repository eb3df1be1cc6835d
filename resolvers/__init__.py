"""Domain operations per area: queries, mutations, rules and authorization."""
