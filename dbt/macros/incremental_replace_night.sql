{#-
    Incremental strategy "replace_night": the nightly marts hold one slice per
    night (column ds). Building a night deletes that night's rows, whatever
    they were, and inserts the new ones, so re-running a night replaces it
    exactly (even when the new slice is empty) and other nights stay.
    Unlike delete+insert on unique_key ds, a night that now yields no rows
    does not keep the rows of an earlier run.
-#}
{% macro get_incremental_replace_night_sql(arg_dict) -%}
    {{ return(adapter.dispatch('replace_night_sql', 'sesame')(arg_dict)) }}
{%- endmacro %}

{% macro default__replace_night_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set dest_cols_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}

    {#- a model that also restates the earlier days the night caught up replaces those days too -#}
    {%- set other_days = config.get('replaces_caught_up_days', false) -%}
    delete from {{ target }}
    where ds = {{ night() }}
    {%- if other_days %} or ds in (select distinct ds from {{ source }}){% endif %};

    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source }}
        {%- if not other_days %}
        where ds = {{ night() }}
        {%- endif %}
    )
{%- endmacro %}

{#-
    On Spark (its plain Parquet tables have no DELETE) the nightly marts use
    insert_overwrite instead (dbt_project.yml chooses by target type): a night
    is the table's ds partition, clear_night_partition() (a pre-hook) drops it
    and insert_overwrite writes the new one, which gives the same result, an
    empty new slice included.
-#}
{% macro clear_night_partition() -%}
    {{ return(adapter.dispatch('clear_night_partition', 'sesame')()) }}
{%- endmacro %}

{% macro default__clear_night_partition() -%}
{%- endmacro %}

{% macro spark__clear_night_partition() -%}
    {%- if is_incremental() -%}
        alter table {{ this }} drop if exists partition (ds = date '{{ night_ds() }}')
    {%- endif -%}
{%- endmacro %}
