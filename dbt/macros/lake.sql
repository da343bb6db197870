{#-
    Reading the lake.

    Each lake table is a dbt source (models/staging/_lake__sources.yml) whose
    relation is a read_parquet() over its Hive-style ds=YYYY-MM-DD folders.
    read_parquet() fails when a glob matches no file, which happens for a zone
    that has no partition yet (a first night). lake_source() returns the source
    relation when the zone has at least one Parquet file, and otherwise an empty
    relation with the columns (and types) declared for that source, plus
    `extra_columns` (a list of column names, typed double) for columns that are
    not declared in the yml, so that the staging models build an empty table
    instead of failing.
-#}

{% macro lake_glob(table_name) -%}
    {%- set node = graph.sources['source.sesame.lake.' ~ table_name] -%}
    {{- env_var('SESAME_HOME') ~ '/lake/' ~ node.config.meta.lake_path ~ '/*/*.parquet' -}}
{%- endmacro %}

{% macro lake_has_files(table_name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set glob_sql -%}
        select count(*) from glob('{{ lake_glob(table_name) | replace("'", "''") }}')
    {%- endset -%}
    {%- set n = run_query(glob_sql).columns[0].values()[0] -%}
    {{ return(n > 0) }}
{%- endmacro %}

{% macro lake_source(table_name, extra_columns=[]) -%}
    {%- set relation = source('lake', table_name) -%}
    {%- if lake_has_files(table_name) -%}
        {{ relation }}
    {%- else -%}
        {%- set node = graph.sources['source.sesame.lake.' ~ table_name] -%}
        {%- do log("lake/" ~ node.config.meta.lake_path ~ " has no partition yet: reading it as empty", info=true) -%}
        (
            select
            {%- for name, column in node.columns.items() %}
                cast(null as {{ column.data_type }}) as {{ adapter.quote(name) }},
            {%- endfor %}
            {%- for name in extra_columns %}
                cast(null as double) as {{ adapter.quote(name) }},
            {%- endfor %}
                1 as _empty_zone
            where false
        )
    {%- endif -%}
{%- endmacro %}
