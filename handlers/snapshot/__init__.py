"""The monthly personal growth snapshot (issue 20 #4): the first-workday wave, ``/snapshot``, the PDF."""
