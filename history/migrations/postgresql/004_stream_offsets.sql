-- Where each stream consumer group has got to in each partition: the next offset to read. The
-- consumer writes it in the same transaction as the rows it scored, so a restart after a crash
-- starts where the history ends, and no event is recorded twice.
CREATE TABLE stream_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);
