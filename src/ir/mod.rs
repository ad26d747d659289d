//! Stage 3: the symbolic IR: a hash-consed arena DAG of scalar and tensor nodes.
