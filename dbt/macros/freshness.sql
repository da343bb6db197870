{#-
    Source freshness measured against the night being built, not the wall clock: a night is often built after
    its day (a late delivery, a backfill), and what matters is whether each lake zone reached that night.
    A partition ds=D holds day D, complete at the end of the day, so the sources' loaded_at_field is
    ds + 1 day and the "now" of the check is the end of the night's day: tonight's partition is 0 hours old,
    a zone whose last partition is the day before is 24 hours behind.
-#}
{% macro default__collect_freshness(source, loaded_at_field, filter) %}
  {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
    select
      max({{ loaded_at_field }}) as max_loaded_at,
      cast({{ dbt.dateadd('day', 1, night()) }} as timestamp) as snapshotted_at
    from {{ source }}
    {% if filter %}
    where {{ filter }}
    {% endif %}
  {% endcall %}
  {{ return(load_result('collect_freshness')) }}
{% endmacro %}
