{#-
    Type names. The yml files (source columns, contracts, seed column types)
    spell types the DuckDB way (varchar, varchar[]); Spark has no varchar
    without a length and writes lists as array<...>, so on Spark those names
    are translated before they reach SQL.
-#}

{#- The type of a text column. -#}
{% macro string_type() -%}
    {{ return(adapter.dispatch('string_type', 'sesame')()) }}
{%- endmacro %}

{% macro default__string_type() -%}
    varchar
{%- endmacro %}

{% macro spark__string_type() -%}
    string
{%- endmacro %}

{#- A type name as written in the yml files, in the engine's own spelling. -#}
{% macro sql_type(data_type) -%}
    {{ return(adapter.dispatch('sql_type', 'sesame')(data_type)) }}
{%- endmacro %}

{% macro default__sql_type(data_type) -%}
    {{ return(data_type) }}
{%- endmacro %}

{% macro spark__sql_type(data_type) -%}
    {%- set name = data_type | trim | lower -%}
    {%- if name.endswith('[]') -%}
        {{ return('array<' ~ spark__sql_type(name[:-2]) ~ '>') }}
    {%- elif name in ('varchar', 'text') -%}
        {{ return('string') }}
    {%- else -%}
        {{ return(name) }}
    {%- endif -%}
{%- endmacro %}

{#-
    Contracts: dbt checks a model against its declared column types by
    casting nulls to them; on Spark the declared (DuckDB) names are translated
    first so that the check compares Spark types with Spark types.
-#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set copy = column.copy() -%}
        {%- if copy.get('data_type') -%}
            {%- do copy.update({'data_type': sql_type(copy['data_type'])}) -%}
        {%- endif -%}
        {%- do translated.update({name: copy}) -%}
    {%- endfor -%}
    {{ return(dbt.default__get_empty_schema_sql(translated)) }}
{%- endmacro %}

{#- The start of a night (a date) as an instant in UTC, whatever the session's time zone: DuckDB needs the zone
    said (its timestamp has none, and readers such as the feature store need one); Spark's session is in UTC. -#}
{% macro night_start_utc(date_expr) -%}
    {{ return(adapter.dispatch('night_start_utc', 'sesame')(date_expr)) }}
{%- endmacro %}

{% macro default__night_start_utc(date_expr) -%}
    cast({{ date_expr }} as timestamp)
{%- endmacro %}

{% macro duckdb__night_start_utc(date_expr) -%}
    timezone('UTC', cast({{ date_expr }} as timestamp))
{%- endmacro %}
