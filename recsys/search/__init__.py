"""Finding items: the vector index in memory (`vector_index`, `slots`, `ivf`, `faiss_runtime`)
and in files kept in step with the store (`index_files`, `memory_plan`), the photo/text façade
(`item_index`) and its one result type (`hits`), a query's steps (`query`, `exact_match`,
`query_photos`), facets and filters (`facets`), and the personal blend (`personal`)."""
