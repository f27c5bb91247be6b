# provision: sources and tests (see the top-level Makefile for the lists)
