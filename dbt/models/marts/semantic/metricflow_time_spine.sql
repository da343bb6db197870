-- One row per day, the calendar MetricFlow joins metrics to (dbt's time spine), from 2020 to 2039.
with

days as (

    {{ dbt.date_spine('day', "cast('2020-01-01' as date)", "cast('2040-01-01' as date)") }}

)

select cast(date_day as date) as date_day
from days
