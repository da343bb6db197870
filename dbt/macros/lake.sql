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

    On Spark the relation is the zone's folder read as Parquet (partition
    discovery gives ds; the profile turns on schema merging, so files are
    combined by column name as in DuckDB).
-#}

{% macro lake_folder(table_name) -%}
    {%- set node = graph.sources['source.sesame.lake.' ~ table_name] -%}
    {{- env_var('SESAME_HOME') ~ '/lake/' ~ node.config.meta.lake_path -}}
{%- endmacro %}

{% macro lake_glob(table_name) -%}
    {{- lake_folder(table_name) ~ '/*/*.parquet' -}}
{%- endmacro %}

{% macro lake_has_files(table_name) -%}
    {{ return(adapter.dispatch('lake_has_files', 'sesame')(table_name)) }}
{%- endmacro %}

{% macro default__lake_has_files(table_name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set glob_sql -%}
        select count(*) from glob('{{ lake_glob(table_name) | replace("'", "''") }}')
    {%- endset -%}
    {%- set n = run_query(glob_sql).columns[0].values()[0] -%}
    {{ return(n > 0) }}
{%- endmacro %}

{#-
    Spark SQL has no glob(), and reading a folder that does not exist fails.
    A throwaway external table in the binaryFile format lists the files under
    the zone (without reading them; none when the folder is missing). It is
    created over an empty scratch folder and then pointed at the zone, because
    creating it there directly would create a missing zone folder in the lake.
    Being external, dropping it leaves the files alone.
-#}
{% macro spark__lake_has_files(table_name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set probe = 'default.sesame_lake_probe_' ~ table_name -%}
    {%- set scratch = env_var('SESAME_HOME') ~ '/tmp/lake_probe' -%}
    {%- do run_query('drop table if exists ' ~ probe) -%}
    {%- do run_query('create table ' ~ probe ~ ' using binaryFile location ' ~ spark_string_literal(scratch)) -%}
    {%- do run_query('alter table ' ~ probe ~ ' set location ' ~ spark_string_literal(lake_folder(table_name))) -%}
    {%- set n = run_query("select count(*) from " ~ probe ~ " where path like '%/ds=%/%.parquet'").columns[0].values()[0] -%}
    {%- do run_query('drop table if exists ' ~ probe) -%}
    {{ return(n > 0) }}
{%- endmacro %}

{#- The relation reading a lake zone that has files. -#}
{% macro lake_relation(table_name) -%}
    {{ return(adapter.dispatch('lake_relation', 'sesame')(table_name)) }}
{%- endmacro %}

{% macro default__lake_relation(table_name) -%}
    {{ return(source('lake', table_name)) }}
{%- endmacro %}

{% macro spark__lake_relation(table_name) -%}
    {#- source() still records the model's dependency on the source -#}
    {%- set relation = source('lake', table_name) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return('parquet.`' ~ lake_folder(table_name) ~ '`') }}
{%- endmacro %}

{% macro lake_source(table_name, extra_columns=[]) -%}
    {%- set relation = lake_relation(table_name) -%}
    {%- if lake_has_files(table_name) -%}
        {{ relation }}
    {%- else -%}
        {%- set node = graph.sources['source.sesame.lake.' ~ table_name] -%}
        {%- do log("lake/" ~ node.config.meta.lake_path ~ " has no partition yet: reading it as empty", info=true) -%}
        (
            select
            {%- for name, column in node.columns.items() %}
                cast(null as {{ sql_type(column.data_type) }}) as {{ adapter.quote(name) }},
            {%- endfor %}
            {%- for name in extra_columns %}
                cast(null as double) as {{ adapter.quote(name) }},
            {%- endfor %}
                1 as _empty_zone
            where false
        )
    {%- endif -%}
{%- endmacro %}
