"""
The composition roots: one module per role exporting C{Options} and
C{makeService}, plus L{postal.tap.allinone} for postal.tac.  The only place
(with postal.tac) that touches the global reactor, and only inside functions.
"""
