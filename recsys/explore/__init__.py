"""Looking at a catalog as a whole: the 2-D catalog map."""
