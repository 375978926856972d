"""Publishing pipeline of the communes' open data: one module per stage.

Data flows one way: inbox -> read -> metadata -> licence -> structure -> publish
-> catalog store. Every stage is a plain function usable without Airflow.
"""
