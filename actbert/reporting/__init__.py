"""What an ``evaluate`` result looks like to a reader: its figures (``figures``: Plotly charts and
table rows, shared by the report card and the explorer's Model page), the report card itself
(``report``: one HTML page), PNG bar charts (``plot``: ``evaluate --plot``) and the paper's tables
for a benchmark run (``paper_tables``: ``evaluate --dataset``)."""
