//! SQL of `customers`: a tenant's customer records, written by
//! `POST /v1/customers` and on the fly by the message path. Matching and
//! validation live in `http::agent::customers`; this module only reads and writes rows.

use std::sync::{Arc, Mutex};

use diesel::prelude::*;

use super::connection::DbConn;
use super::schema::customers;
use super::writes::{conflict, op, Write};
use super::{Store, StoreError};

#[derive(Queryable, Selectable, Insertable, Debug, Clone, PartialEq)]
#[diesel(table_name = customers)]
pub struct CustomerRow {
    /// `cust_` + a time-ordered suffix.
    pub id: String,
    pub tenant_id: String,
    /// The caller's own id for this customer; unique within the tenant.
    pub external_id: Option<String>,
    /// Normalised (trimmed, lower case).
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub name: Option<String>,
    /// JSON array of strings.
    pub tags: String,
    /// JSON object.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// The tenant's customer `id`; another tenant's is `None`.
    pub async fn customer(&self, tenant_id: &str, id: &str) -> Result<Option<CustomerRow>, StoreError> {
        let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
        self.read(move |conn| {
            Ok(customers::table
                .filter(customers::id.eq(id))
                .filter(customers::tenant_id.eq(tenant_id))
                .select(CustomerRow::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// The tenant's customer with this `external_id` (at most one: the index is unique).
    pub async fn customer_by_external_id(
        &self,
        tenant_id: &str,
        external_id: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        let (tenant_id, external_id) = (tenant_id.to_string(), external_id.to_string());
        self.read(move |conn| {
            Ok(customers::table
                .filter(customers::tenant_id.eq(tenant_id))
                .filter(customers::external_id.eq(external_id))
                .select(CustomerRow::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// The tenant's oldest customer with this (normalised) email.
    pub async fn customer_by_email(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        let (tenant_id, email) = (tenant_id.to_string(), email.to_string());
        self.read(move |conn| {
            Ok(customers::table
                .filter(customers::tenant_id.eq(tenant_id))
                .filter(customers::email.eq(email))
                .order((customers::created_at.asc(), customers::id.asc()))
                .select(CustomerRow::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// The tenant's oldest customer with this E.164 phone number.
    pub async fn customer_by_phone(
        &self,
        tenant_id: &str,
        phone: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        let (tenant_id, phone) = (tenant_id.to_string(), phone.to_string());
        self.read(move |conn| {
            Ok(customers::table
                .filter(customers::tenant_id.eq(tenant_id))
                .filter(customers::phone.eq(phone))
                .order((customers::created_at.asc(), customers::id.asc()))
                .select(CustomerRow::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }
}

/// A new customer. A second customer with the tenant's `external_id` is
/// refused as `StoreError::Duplicate`.
pub fn insert_customer(row: CustomerRow) -> Write {
    op(move |conn| diesel::insert_into(customers::table).values(row.clone()).execute(conn).map(|_| ()))
}

/// Rewrites every field of the customer but its id, tenant and creation time.
/// Taking another customer's `external_id` is refused as `StoreError::Duplicate`;
/// a customer that is gone (its tenant deleted) as a conflict. Last writer
/// wins: to change a customer from what it is, see [`change_customer`].
pub fn update_customer(row: CustomerRow) -> Write {
    op(move |conn| overwrite(conn, &row))
}

/// Changes the tenant's customer `id` from what it is at commit time: reads it
/// locked (`FOR UPDATE` on PostgreSQL; SQLite has one writer), applies
/// `change`, writes the result if it differs and leaves it in `result`. So
/// concurrent changes (say, metadata merges) all land instead of the last
/// overwriting the others. `change` refusing (`Err(message)`) and a customer
/// that is gone are conflicts; taking another's `external_id` is `Duplicate`.
pub fn change_customer<F>(
    tenant_id: String,
    id: String,
    change: F,
    result: Arc<Mutex<Option<CustomerRow>>>,
) -> Write
where
    F: Fn(&CustomerRow) -> Result<CustomerRow, String> + Send + 'static,
{
    op(move |conn| {
        let query =
            customers::table.filter(customers::id.eq(&id)).filter(customers::tenant_id.eq(&tenant_id));
        let current = match conn {
            DbConn::Postgres(c) => query.select(CustomerRow::as_select()).for_update().first(c).optional()?,
            DbConn::Sqlite(c) => query.select(CustomerRow::as_select()).first(c).optional()?,
        };
        let current = current.ok_or_else(|| conflict("the customer was deleted meanwhile"))?;
        let next = change(&current).map_err(conflict)?;
        if next != current {
            overwrite(conn, &next)?;
        }
        // The op may run twice (see `group_commit::commit`): the last run is the one committed.
        *result.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(next);
        Ok(())
    })
}

fn overwrite(conn: &mut DbConn, row: &CustomerRow) -> QueryResult<()> {
    let changed = diesel::update(
        customers::table.filter(customers::id.eq(&row.id)).filter(customers::tenant_id.eq(&row.tenant_id)),
    )
    .set((
        customers::external_id.eq(&row.external_id),
        customers::email.eq(&row.email),
        customers::phone.eq(&row.phone),
        customers::name.eq(&row.name),
        customers::tags.eq(&row.tags),
        customers::metadata.eq(&row.metadata),
        customers::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Err(conflict("the customer was deleted meanwhile"));
    }
    Ok(())
}
